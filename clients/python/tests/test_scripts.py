"""Scripts by digest: ``load_script`` gives Redis's digest (SHA-1 of the
code), ``compute`` takes it in place of the code on the connection that
loaded it, and an unknown digest is a :class:`NoScriptError`."""

import hashlib

import pytest

import luapool


def test_a_loaded_script_runs_by_its_digest_on_its_connection_only(daemon, client):
    code = "_io.output = (_io.output or 0) + 1 return _io.output"
    digest = client.load_script(code)
    assert digest == hashlib.sha1(code.encode()).hexdigest()
    with client.session() as s:
        assert s.compute(digest).values == [1]
        assert s.compute(digest.upper()).values == [2]
    assert client.load_script(code) == digest

    with daemon.client() as other, other.session() as o:
        with pytest.raises(luapool.NoScriptError) as e:
            o.compute(digest)
        assert e.value.kind == "NoScript"
        assert e.value.details["digest"] == digest
        other.load_script(code)
        assert o.compute(digest).values == [1]
