from pathlib import Path

from damso_ops.images import sources
LS_REMOTE = """\
1111111111111111111111111111111111111111\trefs/heads/main
2222222222222222222222222222222222222222\trefs/heads/feature/x
3333333333333333333333333333333333333333\trefs/tags/v1
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\trefs/tags/v2
4444444444444444444444444444444444444444\trefs/tags/v2^{}
"""


def test_annotated_tags_are_peeled_to_their_commit():
    tags, branches = sources.parse_ls_remote(LS_REMOTE)
    assert tags == {"v1": "3" * 40, "v2": "4" * 40}
    assert branches == {"main": "1" * 40, "feature/x": "2" * 40}


def test_match_tag_branch_full_and_abbreviated_sha():
    tags, branches = sources.parse_ls_remote(LS_REMOTE)
    assert sources.match_advertised("v2", tags, branches) == ("4" * 40, "tag")
    assert sources.match_advertised("refs/tags/v1", tags, branches) == ("3" * 40, "tag")
    assert sources.match_advertised("feature/x", tags, branches) == ("2" * 40, "branch")
    assert sources.match_advertised("f" * 40, tags, branches) == ("f" * 40, "commit")
    assert sources.match_advertised("2222", tags, branches) == ("2" * 40, "commit")
    assert sources.match_advertised("v3", tags, branches) is None
    assert sources.match_advertised("abcd", tags, branches) is None  # needs history


def test_nearest_names_for_an_unknown_ref():
    tags, branches = sources.parse_ls_remote(LS_REMOTE)
    assert sorted(sources.nearest_names("v3", tags, branches)[:2]) == ["v1", "v2"]


def test_fetch_commands_for_a_new_cache_are_exact(tmp_path):
    wt = tmp_path / "wt"
    sha = "1" * 40
    argvs = [c.argv for c in sources.fetch_commit_commands("file:///r.git", sha, wt)]
    assert argvs == [
        ("git", "init", "-q", str(wt)),
        ("git", "remote", "add", "origin", "file:///r.git"),
        ("git", "fetch", "-q", "--depth", "1", "--no-tags", "origin", sha),
        ("git", "checkout", "-q", "--force", "--detach", sha),
        ("git", "clean", "-q", "-ffdx"),
    ]
    assert all(c.env["GIT_TERMINAL_PROMPT"] == "0" for c in sources.fetch_commit_commands("u", sha, wt))


def test_cache_path_is_stable_and_per_url():
    root = Path("/c")
    a = sources.cache_path(root, "app", "file:///a.git")
    assert a == sources.cache_path(root, "app", "file:///a.git")
    assert a != sources.cache_path(root, "app", "file:///b.git")
    assert a.parent == root / "repos"
