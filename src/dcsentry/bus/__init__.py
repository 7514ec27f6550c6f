"""The distributed pipeline on NATS JetStream (`serve --role ingest|detect|all --bus nats://...`).

Ingest nodes decode syslog into Windows events and publish them to a stream partitioned by the
detection key; detect workers each own some partitions (a lease in a JetStream key-value bucket)
and run the same processing step as the one-node service into the shared store. docs/scaling.md
explains the model.
"""
