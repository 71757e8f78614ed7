"""The integrations load their framework only when imported, and say how to install it."""

from __future__ import annotations

from tests.support.helpers import run_python as run


def test_importing_the_package_loads_no_framework() -> None:
    code = (
        "import sys, chatarmin_os, chatarmin_os.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'django', 'aiohttp') "
        "or m in ('chatarmin_os.fastapi', 'chatarmin_os.django', 'chatarmin_os.aiohttp')))"
    )
    assert run(code) == "[]"


def test_a_missing_framework_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['{0}'] = None\n"
        "try:\n    import chatarmin_os.{0}\n"
        "except ImportError as error:\n    print(error)\n"
    )
    assert run(code.format("fastapi")) == (
        'chatarmin_os.fastapi needs FastAPI: pip install "chatarmin-os[fastapi]"'
    )
    assert run(code.format("django")) == (
        'chatarmin_os.django needs Django: pip install "chatarmin-os[django]"'
    )
    assert run(code.format("aiohttp")) == (
        'chatarmin_os.aiohttp needs aiohttp: pip install "chatarmin-os[aiohttp]"'
    )
