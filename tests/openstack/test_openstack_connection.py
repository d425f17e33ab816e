"""Where the driver finds a cloud: a handed-over clouds.yaml (a secret reference) or the
clouds_yaml setting; mistakes end as one-line permanent errors before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.openstack.connection import cloud_key, open_cloud
from drivers.openstack.settings import OpenStackSettings
from orchestrator.errors import PermanentError
from orchestrator.secrets import Secret

CLOUDS = """\
clouds:
  lab:
    auth: {auth_url: "http://127.0.0.1:9/v3", username: u, password: Pw-77-secret,
           project_name: p, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
"""


def test_a_handed_over_clouds_yaml_is_used_and_its_password_scrubbed() -> None:
    cloud = open_cloud(OpenStackSettings(), {"name": "lab",
                                             "clouds_yaml": Secret("file:/x", CLOUDS)})
    try:
        assert cloud.name == "cloud:lab"
        assert "Pw-77-secret" in cloud.secrets  # masked in any error text
        assert cloud.conn.config.config["auth"]["username"] == "u"
    finally:
        cloud.close()


def test_the_cache_key_of_a_handed_over_cloud_holds_no_secret() -> None:
    key = cloud_key({"name": "lab", "clouds_yaml": Secret("file:/x", CLOUDS)})
    assert key.startswith("lab#") and "Pw-77-secret" not in key


def test_clouds_yaml_in_clear_is_refused() -> None:
    with pytest.raises(PermanentError, match="must be a secret reference"):
        open_cloud(OpenStackSettings(), {"name": "lab", "clouds_yaml": CLOUDS})


def test_a_cloud_the_file_lacks_is_named(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(CLOUDS)
    with pytest.raises(PermanentError, match=r"has no cloud 'other' \(it has: lab\)"):
        open_cloud(OpenStackSettings(cloud="other", clouds_yaml=str(path)))


def test_the_clouds_yaml_setting_is_read(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(CLOUDS)
    cloud = open_cloud(OpenStackSettings(cloud="lab", clouds_yaml=str(path)))
    cloud.close()
    assert cloud.name == "cloud:lab" and "Pw-77-secret" in cloud.secrets
    with pytest.raises(PermanentError, match="cannot be read"):
        open_cloud(OpenStackSettings(cloud="lab", clouds_yaml=str(tmp_path / "none.yaml")))


def test_the_clouds_yaml_setting_takes_what_the_building_layer_published(
        tmp_path: Path) -> None:
    from orchestrator import published
    from orchestrator.errors import SecretError

    published.use(tmp_path / "published")
    try:
        settings = OpenStackSettings(cloud="lab", clouds_yaml="published:clouds/outer")
        with pytest.raises(SecretError, match="has not been published yet"):
            open_cloud(settings)
        path = published.path_of("clouds/outer", create_parent=True)
        path.write_text(CLOUDS)
        cloud = open_cloud(settings)
        cloud.close()
        assert cloud.name == "cloud:lab" and "Pw-77-secret" in cloud.secrets
        assert cloud.conn.config.config["auth"]["username"] == "u"
        with pytest.raises(PermanentError, match=r"has no cloud 'other'"):
            open_cloud(OpenStackSettings(cloud="other", clouds_yaml="published:clouds/outer"))
    finally:
        published.use(None)
