"""Only what pyproject.toml cannot say: the packages are every desktop_llm* package found here,
plus the repository's top-level resources/ folder installed as desktop_llm._resources (the bundled
corpora, a labelled example, their attribution, the icons and a CJK fallback font; desktop_llm/resources.py finds them with importlib.resources).
Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["desktop_llm", "desktop_llm.*"]),
              "desktop_llm._resources", "desktop_llm._resources.corpora", "desktop_llm._resources.icons",
              "desktop_llm._resources.labelled", "desktop_llm._resources.parallel",
              "desktop_llm._resources.conversations", "desktop_llm._resources.fonts"],
    package_dir={"desktop_llm._resources": "resources"},
)
