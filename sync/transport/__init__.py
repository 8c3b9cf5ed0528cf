"""Message transports: the Bus port and its Kafka and in-process adapters."""
