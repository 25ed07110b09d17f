"""case_state: a case's state kept in its row on PostgreSQL (toast_tuple_target 8160)

A state of 10 KB compresses to about 3 KB: above the default target (2 KB) PostgreSQL moved it out to
the TOAST table, so every change wrote (and every lock read fetched) its chunks through the TOAST
index as well as the row. With the target at the page's size the compressed state stays in its row;
a state that compresses to more than that is moved out as before. Existing rows move in when they
are next written. SQLite has no such setting.

Revision ID: 0018
Revises: 0017
"""
from alembic import op


revision = '0018'
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE case_state SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE case_state RESET (toast_tuple_target)")
