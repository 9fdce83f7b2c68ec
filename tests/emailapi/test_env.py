"""Parsing configuration from the environment (pure functions)."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from emailapi import env


def test_postgres_url(tmp_path):
    config = env.parse_database_url(
        "postgres://me:p%40ss@db.local:5433/emailapi?sslmode=require", tmp_path / "x.db")
    assert config["ENGINE"] == "emailapi.lib.postgres"  # Django's, checking pooled connections cheaply
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) \
        == ("me", "p@ss", "db.local", "5433", "emailapi")
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["OPTIONS"]["pool"]["max_size"] >= 1
    assert config["CONN_MAX_AGE"] == 0
    # Pooled connections are checked before use: one ended by the server is replaced (by
    # emailapi.lib.pgcheck, without a round trip when its socket shows nothing wrong).
    assert config["CONN_HEALTH_CHECKS"] is False


def test_pool_size_and_wait(tmp_path):
    config = env.parse_database_url("postgres://db.local/x", tmp_path / "x.db", pool_size=4,
                                    pool_wait=2)
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 2}


def test_a_connection_attempt_is_bounded_unless_the_url_says_otherwise(tmp_path):
    assert env.parse_database_url("postgres://db.local/x", tmp_path / "x.db")[
        "OPTIONS"]["connect_timeout"] == "10"
    assert env.parse_database_url("postgres://db.local/x?connect_timeout=3", tmp_path / "x.db")[
        "OPTIONS"]["connect_timeout"] == "3"


def test_empty_url_is_sqlite_with_wal(tmp_path):
    config = env.parse_database_url("", tmp_path / "var" / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 5
    assert (tmp_path / "var").is_dir()


def test_sqlite_url(tmp_path):
    path = tmp_path / "other.sqlite3"
    assert env.parse_database_url(f"sqlite:///{path}", Path("unused"))["NAME"] == str(path)


def test_unknown_scheme_fails_loudly(tmp_path):
    with pytest.raises(ImproperlyConfigured):
        env.parse_database_url("mysql://x/y", tmp_path / "db")


def test_booleans_and_integers_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "ture")
    with pytest.raises(ImproperlyConfigured):
        env.env_bool("X_BOOL")
    monkeypatch.setenv("X_BOOL", "Yes")
    assert env.env_bool("X_BOOL") is True
    monkeypatch.setenv("X_INT", "80a")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("X_INT", 1, minimum=1)


def test_secret_is_generated_once_and_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("X_SECRET", raising=False)
    path = tmp_path / "var" / "secret.key"
    first = env.secret_from_env_or_file("X_SECRET", path)
    assert "warning" in capsys.readouterr().err
    assert env.secret_from_env_or_file("X_SECRET", path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("X_SECRET", "short")
    with pytest.raises(ImproperlyConfigured):
        env.secret_from_env_or_file("X_SECRET", path)


def test_retry_schedules_are_lists_of_seconds(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from emailapi.env import env_seconds_list

    monkeypatch.setenv("X_SCHEDULE", "1, 5,30")
    assert env_seconds_list("X_SCHEDULE", "9") == [1, 5, 30]
    monkeypatch.delenv("X_SCHEDULE")
    assert env_seconds_list("X_SCHEDULE", "9,10") == [9, 10]
    for bad in ("a,b", "-1", ","):
        monkeypatch.setenv("X_SCHEDULE", bad)
        with pytest.raises(ImproperlyConfigured, match="X_SCHEDULE"):
            env_seconds_list("X_SCHEDULE", "9")


def test_local_addresses_are_ip_addresses_written_one_way(monkeypatch):
    monkeypatch.setenv("X_ADDRESSES", " 127.0.0.2, 2001:DB8:0::25 ,127.0.0.2")
    assert env.env_addresses("X_ADDRESSES") == ["127.0.0.2", "2001:db8::25"]
    monkeypatch.delenv("X_ADDRESSES")
    assert env.env_addresses("X_ADDRESSES") == []
    for bad in ("mail.example.com", "10.0.0.0/8", "127.0.0.256"):
        monkeypatch.setenv("X_ADDRESSES", f"127.0.0.2,{bad}")
        with pytest.raises(ImproperlyConfigured, match=f"X_ADDRESSES.*{bad}"):
            env.env_addresses("X_ADDRESSES")
