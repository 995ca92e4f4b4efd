"""What the benchmarks share: the machine's name for their figures, and a database of their own."""

import platform
from pathlib import Path

import psycopg2
from psycopg2 import sql


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def database_recreate(server: str, name: str) -> str:
    """Drop (ending its sessions) and create database `name` on the server at URL `server`; its URL."""
    database_drop(server, name)
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return database_url(server, name)


def database_drop(server: str, name: str) -> None:
    """Drop database `name` if it exists, ending its sessions."""
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


def database_url(server: str, name: str) -> str:
    """The URL of database `name` on the server at URL `server`."""
    return server.rsplit("/", 1)[0] + "/" + name
