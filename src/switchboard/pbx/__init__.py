"""Call control (pure): destinations, hunting, and (to come) legs, bridge and outcome."""
