"""core.services.plans imports each name from its module on first use (a lazy package): every
name it lists must still be the object its module defines, whatever was imported before."""

from __future__ import annotations

import importlib

from shipdeck.core.services import plans


def test_every_name_is_its_modules_object_after_the_modules_are_imported() -> None:
    # Importing a submodule binds it on the package under its own name: a module named like
    # one of the names listed (plans.verdict and verdict()) would shadow that name from then on.
    modules = {m: importlib.import_module(f"{plans.__name__}.{m}") for m in plans._MODULES}
    for module, names in plans._MODULES.items():
        for name in names:
            assert getattr(plans, name) is getattr(modules[module], name), (module, name)


def test_the_listed_names_are_the_exported_ones() -> None:
    assert sorted(plans._HOME) == sorted(plans.__all__)
