output "agents" {
  description = "Each agent by Vantage region: its instance, zone and the external address it scans from."
  value = {
    for gcp_region, region in var.regions : region => {
      instance = google_compute_instance.agent[gcp_region].name
      zone     = google_compute_instance.agent[gcp_region].zone
      address  = google_compute_instance.agent[gcp_region].network_interface[0].access_config[0].nat_ip
    }
  }
}

output "scanner_addresses" {
  description = "The agents' external addresses: tell your own monitoring these scans are expected."
  value       = sort([for i in google_compute_instance.agent : i.network_interface[0].access_config[0].nat_ip])
}
