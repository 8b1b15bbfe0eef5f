"""What both APIs share: API clients and their tokens, scopes, correlation ids and problem details."""
