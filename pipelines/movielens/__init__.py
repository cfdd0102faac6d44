"""MovieLens-100K, real public data, in the project's TFRecord contract.

Modules, in the order data flows through them:

- ``wheel``: fetch the pinned ``recbole==1.2.1`` wheel with pip, check its sha256, read
  ``ml-100k.{inter,user,item}`` out of the zip (recbole is never installed).
- ``tables``: parse and check the three files.
- ``id_tables``: users and movies as the contract's id fields.
- ``timelines``: requests (a user at a moment, their past, the movies they rate next,
  never-rated negatives).
- ``time_windows``: contiguous windows of whole days; the last is the test, the one before it
  the validation.
- ``stored_features``: requests as ``dftopk_cascade.pipelines.example_format`` features.
- ``convert`` (``python -m dftopk_cascade.pipelines.movielens.convert``): all of it, into a TFRecord
  folder.

Example:
    >>> import os
    >>> from dftopk_cascade.pipelines.movielens.convert import convert_movielens
    >>> from tests.pipelines.movielens_fixture import fixture_wheel
    >>> wheel, digest = fixture_wheel(tmp_dir)
    >>> convert_movielens(wheel, os.path.join(tmp_dir, "data"), windows=3,
    ...                   expected_sha256=digest, progress=False).requests
    25
"""
