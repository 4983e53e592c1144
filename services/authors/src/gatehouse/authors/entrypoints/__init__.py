"""What drives the message bus: HTTP, the AMQP RPC server, and the outbox relay."""
