"""Developer and test tooling: the Apache Kafka launcher and throwaway PostgreSQL clusters."""
