# Vantage agents in several Google Cloud regions: one VPC with a subnet per
# region, one instance per region enrolled through cloud-init
# (../cloud-init/agent.yaml). Agents dial out to the coordinator, so no
# firewall rule lets anything in; each has an external address to scan from.

locals {
  region_names = sort(keys(var.regions))
}

resource "google_compute_network" "agents" {
  name                    = "vantage-agents"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "agents" {
  for_each = var.regions

  name          = "vantage-agents-${each.key}"
  region        = each.key
  network       = google_compute_network.agents.id
  ip_cidr_range = cidrsubnet(var.subnet_range, 8, index(local.region_names, each.key))
}

data "google_compute_zones" "available" {
  for_each = var.regions

  region = each.key
}

resource "google_compute_instance" "agent" {
  for_each = var.regions

  name         = "vantage-agent-${each.value}"
  zone         = data.google_compute_zones.available[each.key].names[0]
  machine_type = var.machine_type
  tags         = ["vantage-agent"]
  labels       = { "vantage-region" = each.value }

  boot_disk {
    initialize_params {
      image = var.image
      size  = 10
    }
  }

  network_interface {
    subnetwork = google_compute_subnetwork.agents[each.key].id
    # An ephemeral external address: the agent's vantage point.
    access_config {}
  }

  metadata = {
    user-data = templatefile("${path.module}/../cloud-init/agent.yaml", {
      agent_url       = var.agent_url
      agent_sha256    = var.agent_sha256
      coordinator_url = var.coordinator_url
      allow           = jsonencode(var.allow)
      join_token      = var.join_tokens[each.value]
      unit_b64        = filebase64("${path.module}/../systemd/vantage-agent.service")
      sysusers_b64    = filebase64("${path.module}/../systemd/sysusers.d/vantage.conf")
    })
    block-project-ssh-keys = true
  }

  shielded_instance_config {
    enable_secure_boot = true
  }

  # The join token is used once, at first boot: a new one must not replace the instance.
  lifecycle {
    ignore_changes = [metadata["user-data"]]
  }
}
