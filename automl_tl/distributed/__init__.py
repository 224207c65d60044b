"""Many workers on one study: admission of trial slots, heartbeats, the worker loop and local workers."""
