"""The operations a service calls: enroll, cancel, and the seat functions."""
