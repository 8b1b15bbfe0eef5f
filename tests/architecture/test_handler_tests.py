"""Every handler has its mirrored unit test (tests/unit/handlers/test_<module>.py), run on the fake unit of work."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_handler_module_has_its_mirrored_unit_test():
    handlers = sorted(
        path.stem for path in (ROOT / "commands_app" / "handlers").glob("*.py") if path.stem != "__init__"
    )
    assert len(handlers) >= 13
    missing = [name for name in handlers if not (ROOT / "tests" / "unit" / "handlers" / f"test_{name}.py").exists()]
    assert missing == []
