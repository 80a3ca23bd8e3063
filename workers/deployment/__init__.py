"""Deployment and scoring: routing to arms, inline row checks, verified pipeline loads."""
