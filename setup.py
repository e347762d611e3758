"""Packaging beyond what pyproject.toml can say: the top-level derivations/ and docs/
travel inside the wheel as ``shrinkage._derivations`` and ``shrinkage._docs``, so an
installed package can build (and point at) its own documents.  In a checkout they stay
where they are, readable; every other package under src/ is found automatically."""

from setuptools import find_packages, setup

setup(
    packages=find_packages("src") + ["shrinkage._derivations", "shrinkage._docs"],
    package_dir={"": "src", "shrinkage._derivations": "derivations", "shrinkage._docs": "docs"},
    package_data={"shrinkage": ["datasets/*.csv"], "shrinkage._derivations": ["*.py"], "shrinkage._docs": ["*.pdf"]},
)
