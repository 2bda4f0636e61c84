"""State shared between the nodes of a cluster (issue 16, DESIGN §7): channel
reservations, idempotency keys, uuid owners, commands between nodes, CTI events and auth
throttles. ``LocalState`` for a node alone, ``RedisState`` for a cluster; both answer the
``ClusterState`` interface (docs/cluster-state.md)."""
