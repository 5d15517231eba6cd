variable "project" {
  description = "The Google Cloud project the agents run in."
  type        = string
}

variable "regions" {
  description = "Where to place agents: Google Cloud region => the Vantage region its join token names. One agent per entry."
  type        = map(string)
  default = {
    "europe-west1" = "eu-west"
    "us-east1"     = "us-east"
    "asia-south1"  = "ap-south"
  }
}

variable "join_tokens" {
  description = "One-time join tokens by Vantage region, from `vantage fleet token --region REGION` (one per agent)."
  type        = map(string)
  sensitive   = true
}

variable "coordinator_url" {
  description = "The coordinator the agents dial out to, e.g. https://coordinator.example.com:7420."
  type        = string

  validation {
    condition     = startswith(var.coordinator_url, "https://")
    error_message = "The coordinator URL must start with https:// (agents speak mutual TLS)."
  }
}

variable "agent_url" {
  description = "Where the instances download the vantage-agent binary (https)."
  type        = string
}

variable "agent_sha256" {
  description = "SHA-256 of that binary; the instance refuses any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.agent_sha256))
    error_message = "agent_sha256 is 64 lowercase hexadecimal digits."
  }
}

variable "allow" {
  description = "The agents' own scan limit (their --allow): your public ranges."
  type        = list(string)
  default     = ["198.18.0.0/15"]
}

variable "machine_type" {
  description = "Instance type of every agent."
  type        = string
  default     = "e2-small"
}

variable "image" {
  description = "Boot image: one with cloud-init and systemd (Ubuntu's read user-data)."
  type        = string
  default     = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
}

variable "subnet_range" {
  description = "Internal addresses of the agents' network, one /24 per region carved from it."
  type        = string
  default     = "198.18.0.0/16"
}
