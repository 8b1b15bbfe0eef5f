"""What happened, told to API consumers: the event feed, and signed webhooks to the endpoints they register."""
