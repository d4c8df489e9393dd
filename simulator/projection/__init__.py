"""Fleet-day projection (issue 5): GWh/day of a fleet under a daily load and a query mix,
by simulating a sample of nodes per load level and scaling up; Monte Carlo uncertainty."""
