"""`t5cls.io.storage`: locations named by local paths and URIs, and URIs that carry secrets."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from t5cls.errors import InputError
from t5cls.io.storage import Location, check_no_secret

SECRETS = st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=6, max_size=20)


@given(scheme=st.sampled_from(["s3", "gs", "abfs", "hdfs"]), user=SECRETS, secret=SECRETS)
def test_a_uri_with_credentials_is_refused_without_repeating_them(scheme, user, secret):
    for uri in (f"{scheme}://{user}:{secret}@bucket/data", f"{scheme}://bucket/data?region=x&secret_key={secret}"):
        with pytest.raises(InputError) as raised:
            check_no_secret(uri)
        assert str(raised.value) == (  # the URI without its secret, and nothing else of it
            f"{scheme}://bucket/data: credentials in a URI would be recorded in the output; set them in the "
            "environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)"
        )


@pytest.mark.parametrize("uri", ["s3://bucket/data", "s3://bucket/data?region=eu-west-1", "data/x.csv", "gs://b/a@b"])
def test_a_uri_without_credentials_passes(uri):
    check_no_secret(uri)


def test_local_locations_write_whole_files_beside_their_sidecars(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec, uri in (("out/scored", "out/.scored.t5cls-parts"), (f"file://{tmp_path}/out/scored/", None)):
        output = Location.of(spec)
        sidecar = output.sibling(".scored.t5cls-parts")
        assert output.local and sidecar.path == f"{tmp_path}/out/.scored.t5cls-parts"
        assert sidecar.uri == (uri or f"file://{tmp_path}/out/.scored.t5cls-parts")
    (tmp_path / "out").mkdir()
    folder = Location.of("out/scored")
    folder.make_folder()
    folder.child("a.json").write_text("{}")
    assert folder.names() == ["a.json"] and folder.child("a.json").read_text() == "{}"
    folder.remove()
    assert not folder.exists() and folder.names() == []


def test_a_bucket_itself_is_not_an_output_folder():
    with pytest.raises(InputError, match=r"^s3://bucket: name a folder inside the bucket"):
        Location("s3://bucket", None, "bucket").sibling(".bucket.t5cls-parts")


def test_a_uri_query_stays_out_of_names_and_travels_to_the_workers():
    output = Location.of("s3://bucket/out/scored/?region=eu-west-1&endpoint_override=127.0.0.1:9")
    sidecar = output.sibling(".scored.t5cls-parts")
    assert (output.uri, output.path, sidecar.uri, sidecar.path) == (
        "s3://bucket/out/scored",
        "bucket/out/scored",
        "s3://bucket/out/.scored.t5cls-parts",
        "bucket/out/.scored.t5cls-parts",
    )
    part = Location.of(output.child("part-1.parquet").address)
    assert part.uri == "s3://bucket/out/scored/part-1.parquet" and part.filesystem.region == "eu-west-1"


def test_an_object_whose_writer_fails_is_not_uploaded(tmp_path):
    """A store shows an upload once its stream is closed, even a failed one: nothing may reach it before the end.

    A `SubTreeFileSystem` is not a local disk to `Location` (no rename), and it shows its files at
    once, so a partial object would be seen here.
    """
    store = Location("s3://bucket/out", pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "out")
    store.make_folder()

    def fails_mid_way(stream) -> None:
        stream.write(b"PAR1 the first half")
        raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError, match="the writer failed"):
        store.child("part-1.parquet").write(fails_mid_way)
    assert store.names() == []
    store.child("part-1.parquet").write(lambda stream: stream.write(b"whole"))
    assert (tmp_path / "out" / "part-1.parquet").read_bytes() == b"whole"
