"""PhantomFlow's domain: movie scripts, pricing, and the event-sourced aggregates."""
