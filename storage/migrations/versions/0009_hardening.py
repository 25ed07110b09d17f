"""hardening: server-side sessions, login throttling, atomic rate counters, single-use form stamps,
signed checkpoints over the chain heads (Merkle tree), and on PostgreSQL triggers that refuse
UPDATE, DELETE and TRUNCATE on the audit trail and the checkpoint tables

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

APPEND_ONLY = ('audit_event', 'checkpoint_leaf', 'audit_checkpoint')

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION xiaowei_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'xiaowei: % on % is refused: the audit trail is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        'user_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_user_session_user_ended', 'user_session', ['user_id', 'ended_at'])
    op.create_index(op.f('ix_user_session_expires_at'), 'user_session', ['expires_at'])
    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=16), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('reported', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.Column('next_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_login_throttle_username'), 'login_throttle', ['username'])
    op.create_index(op.f('ix_login_throttle_last_at'), 'login_throttle', ['last_at'])
    op.create_table(
        'rate_counter',
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'window_start'),
    )
    op.create_table(
        'form_stamp',
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('nonce'),
    )
    op.create_index(op.f('ix_form_stamp_used_at'), 'form_stamp', ['used_at'])
    op.create_table(
        'audit_checkpoint',
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('tree_size', sa.Integer(), nullable=False),
        sa.Column('root_hash', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('signature', sa.String(length=128), nullable=False),
        sa.Column('frontier', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('number'),
    )
    op.create_table(
        'checkpoint_leaf',
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('leaf_hash', sa.String(length=64), nullable=False),
        sa.Column('checkpoint', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    op.create_index('ix_checkpoint_leaf_chain', 'checkpoint_leaf', ['chain', 'idx'])
    op.create_table(
        'audit_anchor',
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('leaf_idx', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('chain'),
    )
    op.create_index(op.f('ix_audit_anchor_case_id'), 'audit_anchor', ['case_id'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(TRIGGER_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(f'CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} '
                       f'FOR EACH ROW EXECUTE FUNCTION xiaowei_append_only()')
            op.execute(f'CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} '
                       f'FOR EACH STATEMENT EXECUTE FUNCTION xiaowei_append_only()')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in APPEND_ONLY:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}')
            op.execute(f'DROP TRIGGER IF EXISTS {table}_no_change ON {table}')
        op.execute('DROP FUNCTION IF EXISTS xiaowei_append_only()')
    op.drop_index(op.f('ix_audit_anchor_case_id'), table_name='audit_anchor')
    op.drop_table('audit_anchor')
    op.drop_index('ix_checkpoint_leaf_chain', table_name='checkpoint_leaf')
    op.drop_table('checkpoint_leaf')
    op.drop_table('audit_checkpoint')
    op.drop_index(op.f('ix_form_stamp_used_at'), table_name='form_stamp')
    op.drop_table('form_stamp')
    op.drop_table('rate_counter')
    op.drop_index(op.f('ix_login_throttle_last_at'), table_name='login_throttle')
    op.drop_index(op.f('ix_login_throttle_username'), table_name='login_throttle')
    op.drop_table('login_throttle')
    op.drop_index(op.f('ix_user_session_expires_at'), table_name='user_session')
    op.drop_index('ix_user_session_user_ended', table_name='user_session')
    op.drop_table('user_session')
