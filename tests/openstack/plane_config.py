"""The configuration files, ports and commands of the test OpenStack plane (plane.py): one
admin user for every service, MariaDB through its unix socket, RabbitMQ on a private port."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from plane import Plane

RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
#: The libvirt compute (plane_libvirt.py): its host name, zone, bridge and subnet.
LIBVIRT_HOST = "orch-plane-libvirt"
LIBVIRT_AZ = "orch-libvirt"
#: The fake-driver compute's zone: every server that names no zone.
FAKE_AZ = "orch-fake"
BRIDGE = "orchnovalibv0"  # <= 14 characters: Nova truncates longer names
LIBVIRT_CIDR = "10.231.77.0/24"
PORTS = ("keystone", "placement", "glance", "neutron", "nova", "rabbit", "rabbit_dist", "epmd")
DATABASES = ("keystone", "placement", "glance", "neutron", "nova_api", "nova", "nova_cell0")
#: API name -> its WSGI application (run under gunicorn)
APIS = {"keystone": "keystone.wsgi.api:application",
        "placement": "placement.wsgi.api:application",
        "glance": "glance.wsgi.api:application",
        "neutron": "neutron.wsgi.api:application",
        "nova": "nova.wsgi.osapi_compute:application"}
#: API name -> (service type, path of its public endpoint); Keystone's comes from bootstrap
CATALOG = {"placement": ("placement", ""), "glance": ("image", ""),
           "neutron": ("network", ""), "nova": ("compute", "/v2.1")}


def user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def mysql_socket(plane: Plane) -> Path:
    return plane.state / "mysql.sock"


def db_url(plane: Plane, name: str) -> str:
    return (f"mysql+pymysql://root@localhost/{name}?unix_socket={mysql_socket(plane)}"
            "&charset=utf8")


def transport_url(plane: Plane) -> str:
    return f"rabbit://guest:guest@127.0.0.1:{plane.ports['rabbit']}/"


def mariadb_args(plane: Plane) -> list[str]:
    state = plane.state
    (state / "tmp").mkdir(exist_ok=True)
    return [f"--datadir={state / 'mysql'}", f"--socket={mysql_socket(plane)}",
            "--skip-networking", f"--pid-file={state / 'mariadb.pid'}",
            f"--log-error={state / 'mariadb.log'}", f"--user={user()}",
            f"--tmpdir={state / 'tmp'}", "--innodb-buffer-pool-size=64M",
            "--performance-schema=OFF", "--max-connections=1000", "--skip-name-resolve",
            "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
            "--character-set-server=utf8mb4"]


def rabbit_env(plane: Plane) -> dict[str, str]:
    base = plane.state / "rabbitmq"
    return {
        "HOME": str(base), "RABBITMQ_NODENAME": f"orch{plane.ports['rabbit']}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(plane.ports["rabbit"]),
        "RABBITMQ_DIST_PORT": str(plane.ports["rabbit_dist"]),
        "ERL_EPMD_PORT": str(plane.ports["epmd"]),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 2:2 +A 4",
    }


def _auth(plane: Plane) -> dict[str, str]:
    return {"auth_url": plane.auth_url, "auth_type": "password", "username": "admin",
            "password": plane.password, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": "RegionOne"}


def _ini(sections: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out += [f"{key} = {value}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def write_all(plane: Plane, here: Path) -> dict[str, Path]:
    """Every configuration file; returns the main one of each service by name."""
    from plane import plane_bin

    s = plane.state
    etc = plane_bin().parent / "etc"
    auth = _auth(plane)
    token = {"www_authenticate_uri": plane.auth_url, **auth}
    lock = {"lock_path": str(s / "locks")}
    files: dict[str, Path] = {}

    rabbit = s / "rabbitmq"
    _write(rabbit / "rabbitmq-env.conf", "")
    _write(rabbit / "enabled_plugins", "[].\n")
    _write(rabbit / "advanced.config", "[].\n")
    _write(rabbit / "rabbitmq.conf",
           f"listeners.tcp.default = 127.0.0.1:{plane.ports['rabbit']}\n"
           "disk_free_limit.absolute = 50MB\nvm_memory_high_watermark.absolute = 512MB\n")

    files["keystone"] = _write(s / "keystone" / "keystone.conf", _ini({
        "DEFAULT": {"use_stderr": "true"},
        "database": {"connection": db_url(plane, "keystone")},
        "token": {"provider": "fernet", "expiration": 3600},
        "fernet_tokens": {"key_repository": s / "keystone" / "fernet-keys"},
        "fernet_receipts": {"key_repository": s / "keystone" / "fernet-receipts"},
        "credential": {"key_repository": s / "keystone" / "credential-keys"},
    }))
    files["placement"] = _write(s / "placement" / "placement.conf", _ini({
        "DEFAULT": {"use_stderr": "true"},
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": db_url(plane, "placement")},
        "keystone_authtoken": token,
        "oslo_concurrency": lock,
    }))
    shutil.copy(etc / "glance" / "glance-api-paste.ini", s / "glance-api-paste.ini")
    files["glance"] = _write(s / "glance" / "glance-api.conf", _ini({
        "DEFAULT": {"use_stderr": "true", "enabled_backends": "file:file",
                    "enabled_import_methods": "[glance-direct,web-download]",
                    "worker_self_reference_url": plane.url("glance")},
        "database": {"connection": db_url(plane, "glance")},
        "keystone_authtoken": token,
        "paste_deploy": {"flavor": "keystone",
                         "config_file": s / "glance-api-paste.ini"},
        "glance_store": {"default_backend": "file"},
        "file": {"filesystem_store_datadir": f"{s / 'glance' / 'images'}/"},
        "os_glance_staging_store": {"filesystem_store_datadir": f"{s / 'glance' / 'staging'}/"},
        "os_glance_tasks_store": {"filesystem_store_datadir": f"{s / 'glance' / 'tasks'}/"},
        # the tests serve images from a loopback HTTP server on a free port
        "import_filtering_opts": {"allowed_ports": "[]", "disallowed_hosts": "[]"},
        "oslo_concurrency": lock,
    }))

    neutron = s / "neutron"
    shutil.copy(etc / "neutron" / "api-paste.ini", neutron.parent / "neutron-api-paste.ini")
    site = neutron / "site"
    shutil.copy(here / "plane_mech.py", _write(site / "plane_mech.py", "").parent)
    dist = site / "orch_plane_mech-0.dist-info"
    _write(dist / "METADATA", "Metadata-Version: 2.1\nName: orch-plane-mech\nVersion: 0\n")
    _write(dist / "entry_points.txt",
           "[neutron.ml2.mechanism_drivers]\norch_test_bind = plane_mech:BindEveryPort\n")
    files["neutron"] = _write(neutron / "neutron.conf", _ini({
        "DEFAULT": {"use_stderr": "true", "core_plugin": "ml2", "service_plugins": "",
                    "auth_strategy": "keystone", "transport_url": transport_url(plane),
                    "api_paste_config": neutron.parent / "neutron-api-paste.ini",
                    "state_path": neutron, "dhcp_agent_notification": "false",
                    "notify_nova_on_port_status_changes": "true",
                    "notify_nova_on_port_data_changes": "true"},
        "database": {"connection": db_url(plane, "neutron")},
        "keystone_authtoken": token,
        "nova": auth,
        "oslo_concurrency": lock,
    }))
    files["ml2"] = _write(neutron / "ml2_conf.ini", _ini({
        "ml2": {"type_drivers": "flat,vlan,vxlan", "tenant_network_types": "vxlan",
                "mechanism_drivers": "orch_test_bind", "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": "physnet1"},
        "ml2_type_vlan": {"network_vlan_ranges": "physnet1:100:199"},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
    }))

    nova = s / "nova"
    shutil.copy(etc / "nova" / "api-paste.ini", _write(nova / "api-paste.ini", ""))
    service_auth = {**auth, "valid_interfaces": "public"}
    files["nova"] = _write(nova / "nova.conf", _ini({
        "DEFAULT": {"transport_url": transport_url(plane), "compute_driver": "fake.FakeDriver",
                    "host": "orch-plane", "my_ip": "127.0.0.1", "state_path": nova,
                    "instances_path": nova / "instances", "use_stderr": "true",
                    "allow_resize_to_same_host": "true",
                    # servers land in the fake host's zone unless they name the libvirt
                    # compute's (LIBVIRT_AZ); Nova's default zone has no aggregate, so it
                    # would not keep them off the libvirt host
                    "default_schedule_zone": FAKE_AZ},
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": nova / "api-paste.ini"},
        "api_database": {"connection": db_url(plane, "nova_api")},
        "database": {"connection": db_url(plane, "nova")},
        "keystone_authtoken": token,
        "placement": service_auth, "neutron": service_auth, "glance": service_auth,
        "service_user": {**auth, "send_service_user_token": "false"},
        "scheduler": {"discover_hosts_in_cells_interval": 2, "workers": 1},
        "conductor": {"workers": 1},
        "vnc": {"enabled": "false"},
        # unlimited: the tests' flavor that no host fits must reach the scheduler
        "quota": {"instances": -1, "cores": -1, "ram": -1},
        "oslo_concurrency": lock,
    }))

    for name, module in APIS.items():
        _write(s / "gunicorn" / name / "gunicorn.conf.py", "\n".join((
            f"bind = '127.0.0.1:{plane.ports[name]}'", "workers = 1", "timeout = 300",
            f"wsgi_app = {module!r}", "control_socket_disable = True",
            f"proc_name = 'orch-plane-{name}'", "")))
    return files


def api_env(plane: Plane, name: str, files: dict[str, Path]) -> dict[str, str]:
    """Where each WSGI application finds its configuration (they take no arguments)."""
    s = plane.state
    return {
        "keystone": {"OS_KEYSTONE_CONFIG_DIR": str(s / "keystone"),
                     "OS_KEYSTONE_CONFIG_FILES": "keystone.conf"},
        "placement": {"OS_PLACEMENT_CONFIG_DIR": str(s / "placement")},
        "glance": {"OS_GLANCE_CONFIG_DIR": str(s / "glance")},
        "neutron": {"OS_NEUTRON_CONFIG_DIR": str(s / "neutron"),
                    "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
                    "PYTHONPATH": str(s / "neutron" / "site"),
                    # the libvirt compute's ports (plane_mech.py, plane_libvirt.py)
                    "ORCH_PLANE_LIBVIRT_HOST": LIBVIRT_HOST, "ORCH_PLANE_BRIDGE": BRIDGE,
                    "ORCH_PLANE_DHCP_HOSTS": str(dhcp_hosts(plane))},
        "nova": {"OS_NOVA_CONFIG_DIR": str(s / "nova"),
                 "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"},
    }[name]


def migrations(plane: Plane, files: dict[str, Path]) -> dict[str, list[list[str]]]:
    """Per service, the commands that create its schema (Keystone: and its admin)."""
    keystone = ["keystone-manage", "--config-file", str(files["keystone"])]
    owner = ["--keystone-user", user(), "--keystone-group", group()]
    nova = ["nova-manage", "--config-file", str(files["nova"])]
    return {
        "keystone": [[*keystone, "db_sync"], [*keystone, "fernet_setup", *owner],
                     [*keystone, "credential_setup", *owner],
                     [*keystone, "bootstrap", "--bootstrap-admin-url", plane.auth_url,
                      "--bootstrap-public-url", plane.auth_url,
                      "--bootstrap-internal-url", plane.auth_url,
                      "--bootstrap-region-id", "RegionOne"]],
        "placement": [["placement-manage", "--config-file", str(files["placement"]), "db",
                       "sync"]],
        "glance": [["glance-manage", "--config-file", str(files["glance"]), "db_sync"]],
        "neutron": [["neutron-db-manage", "--config-file", str(files["neutron"]),
                     "--config-file", str(files["ml2"]), "upgrade", "head"]],
        "nova": [[*nova, "api_db", "sync"],
                 [*nova, "cell_v2", "map_cell0", "--database_connection",
                  db_url(plane, "nova_cell0")],
                 [*nova, "cell_v2", "create_cell", "--name", "cell1"],
                 [*nova, "db", "sync"]],
    }


def dhcp_hosts(plane: Plane) -> Path:
    return plane.state / "dhcp-hosts"


def write_libvirt_compute(plane: Plane, nova_conf: Path, socket: Path) -> Path:
    """The second nova-compute's nova.conf: the plane's, with the libvirt driver under TCG
    on the private libvirtd at ``socket``, its own host name and state directory, and a
    config drive on every server (how the key reaches the lab image: os_guest_image.py)."""
    import configparser

    cfg = configparser.RawConfigParser(strict=False)
    cfg.optionxform = str  # type: ignore[assignment,method-assign]
    cfg.read(nova_conf)
    state = plane.state / "nova-libvirt"
    helper = f"{plane_bin_dir()}/privsep-helper --config-file {state / 'nova.conf'}"
    sections: dict[str, dict[str, Any]] = {
        "DEFAULT": {"compute_driver": "libvirt.LibvirtDriver", "host": LIBVIRT_HOST,
                    "state_path": state, "instances_path": state / "instances",
                    "force_config_drive": "true", "force_raw_images": "false",
                    "vif_plugging_is_fatal": "false", "vif_plugging_timeout": 30},
        "libvirt": {"virt_type": "qemu", "cpu_mode": "none", "images_type": "qcow2",
                    "connection_uri": f"qemu+unix:///system?socket={socket}",
                    "inject_partition": -2},
        # root already: privsep's helper runs directly, not through sudo and rootwrap
        "nova_sys_admin": {"helper_command": helper},
        "vif_plug_linux_bridge_privileged": {"helper_command": helper},
        "privsep_osbrick": {"helper_command": helper},
        "spice": {"enabled": "false"},
        "serial_console": {"enabled": "false"},
    }
    for section, values in sections.items():
        if section != "DEFAULT" and not cfg.has_section(section):
            cfg.add_section(section)
        for key, value in values.items():
            cfg.set(section, key, str(value))
    path = state / "nova.conf"
    (state / "instances").mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        cfg.write(fh)
    return path


def plane_bin_dir() -> str:
    return os.environ.get("ORCH_OPENSTACK_BIN", "/opt/orch-openstack/bin")


def write_clouds_yaml(plane: Plane) -> Path:
    """The clouds.yaml handed to the tests (mode 0600: it holds the admin password)."""
    auth = {k: v for k, v in _auth(plane).items() if k not in ("auth_type", "region_name")}
    doc = {"clouds": {plane.cloud: {"auth": auth, "region_name": "RegionOne",
                                    "identity_api_version": 3}}}
    return _write(plane.state / "clouds.yaml", yaml.safe_dump(doc))
