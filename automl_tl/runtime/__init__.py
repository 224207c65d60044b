"""Process-wide machinery: signal handling for graceful stops, allocator tuning and CPU budget."""
