"""What every bench module gets: the world it runs in, the run's size, and an API client that is never throttled."""

from dataclasses import dataclass
from functools import cached_property

from bench.environment import World

UNTHROTTLED_PER_MINUTE = 1_000_000_000


@dataclass
class Context:
    world: World
    quick: bool = False
    repeat: int = 3
    web_workers: int = 4
    # The memory figure's time cap: 100,000 commands take ~10-15 min on 2 cores, more than the bench's budget.
    memory_minutes: float = 4.0
    # The replay figure's log size when not the default (iterating on the replay without its full size).
    replay_events: int | None = None

    @cached_property
    def token(self) -> str:
        """A throwaway API client with every scope and a rate limit no bench reaches."""
        return api_token(f"bench-{self.world.database}", ["read", "write", "catalog"])


def api_token(name: str, scopes: list[str]) -> str:
    from api_common.models import ApiClient

    ApiClient.objects.filter(name=name).delete()
    client = ApiClient(name=name, scopes=scopes, rate_limit_per_minute=UNTHROTTLED_PER_MINUTE)
    token = client.issue_token()
    client.save()
    return token
