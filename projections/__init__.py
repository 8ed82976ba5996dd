"""Read models built by following the event store, rebuildable from zero."""
