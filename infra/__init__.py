"""The petstore-rds Pulumi program's components (one ComponentResource per concern)."""
