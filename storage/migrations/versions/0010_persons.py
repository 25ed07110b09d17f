"""persons: the person register (person, household), kinship by person (person_relation), the
persons a case is about (case_person), accounts linked to persons; the name-based kinship
register copied into kinship by person

Revision ID: 0010
Revises: 0009
"""
from datetime import datetime, timezone
import re

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'household',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_household_org_id'), 'household', ['org_id'])
    op.create_table(
        'person',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.Column('household_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_key', sa.String(length=100), nullable=False),
        sa.Column('id_hash', sa.String(length=64), nullable=True),
        sa.Column('id_cipher', sa.Text(), nullable=False),
        sa.Column('id_tail', sa.String(length=4), nullable=False),
        sa.Column('phone_hash', sa.String(length=64), nullable=True),
        sa.Column('phone_cipher', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['household.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('id_hash'),
    )
    op.create_index('ix_person_org_name', 'person', ['org_id', 'name_key'])
    op.create_index(op.f('ix_person_org_id'), 'person', ['org_id'])
    op.create_index(op.f('ix_person_household_id'), 'person', ['household_id'])
    op.create_index(op.f('ix_person_phone_hash'), 'person', ['phone_hash'])
    op.create_table(
        'person_relation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('relative_id', sa.Integer(), nullable=False),
        sa.Column('relation', sa.String(length=20), nullable=False),
        sa.Column('degree', sa.Integer(), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('declared_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.ForeignKeyConstraint(['relative_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id', 'relative_id', 'relation'),
    )
    op.create_index(op.f('ix_person_relation_person_id'), 'person_relation', ['person_id'])
    op.create_index(op.f('ix_person_relation_relative_id'), 'person_relation', ['relative_id'])
    op.create_table(
        'case_person',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.String(length=100), nullable=False),
        sa.Column('field', sa.String(length=60), nullable=False),
        sa.Column('role', sa.String(length=30), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('matched', sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'step_id', 'field'),
    )
    op.create_index(op.f('ix_case_person_case_id'), 'case_person', ['case_id'])
    op.create_index('ix_case_person_person', 'case_person', ['person_id'])
    op.create_table(
        'app_secret',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    if op.get_bind().dialect.name == 'sqlite':
        # A plain ADD COLUMN: SQLite's batch mode would copy and drop user_account, which the foreign keys
        # of role_assignment and user_session pointing at it refuse in a database that is in use.
        op.execute('ALTER TABLE user_account ADD COLUMN person_id INTEGER REFERENCES person (id)')
    else:
        op.add_column('user_account', sa.Column('person_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_user_account_person_id_person', 'user_account', 'person', ['person_id'], ['id'])
    op.create_index(op.f('ix_user_account_person_id'), 'user_account', ['person_id'])
    _copy_kinship()


def _name_key(text) -> str:
    return re.sub(r"\s+", "", str(text or "")).strip().lower()


def _copy_kinship() -> None:
    """Kinship by name → kinship by person: a person for each cadre (linked to the account) and for
    each declared relative (one per name and village), and a relation with the declared degree."""
    conn = op.get_bind()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    person = sa.table('person', sa.column('id'), sa.column('org_id'), sa.column('name'), sa.column('name_key'),
                      sa.column('id_cipher'), sa.column('id_tail'), sa.column('phone_cipher'),
                      sa.column('created_at'), sa.column('created_by'))
    relation = sa.table('person_relation', sa.column('person_id'), sa.column('relative_id'), sa.column('relation'),
                        sa.column('degree'), sa.column('note'), sa.column('declared_by'), sa.column('created_at'))
    users = sa.table('user_account', sa.column('id'), sa.column('username'), sa.column('display_name'),
                     sa.column('person_id'))
    rows = conn.execute(sa.text("SELECT org_id, cadre, cadre_name, person_name, relation, degree, note, "
                                "declared_by, created_at FROM kinship ORDER BY id")).all()
    if not rows:
        return
    known: dict[tuple, int] = {}

    def person_for(org_id, name) -> int:
        key = (org_id, _name_key(name))
        if key not in known:
            found = conn.execute(sa.select(person.c.id).where(person.c.org_id == org_id,
                                                              person.c.name_key == key[1])).scalar()
            if found is None:
                found = conn.execute(person.insert().values(
                    org_id=org_id, name=str(name)[:100], name_key=key[1], id_cipher="", id_tail="", phone_cipher="",
                    created_at=now, created_by="migration 0010").returning(person.c.id)).scalar()
            known[key] = found
        return known[key]

    for row in rows:
        user = conn.execute(sa.select(users.c.id, users.c.display_name, users.c.person_id)
                            .where(users.c.username == row.cadre)).first()
        if user is not None and user.person_id is not None:
            cadre = user.person_id
        else:
            cadre = person_for(row.org_id, row.cadre_name or (user.display_name if user else "") or row.cadre)
            if user is not None:
                conn.execute(users.update().where(users.c.id == user.id).values(person_id=cadre))
        relative = cadre if row.relation == "self" else person_for(row.org_id, row.person_name)
        exists = conn.execute(sa.select(sa.func.count()).select_from(relation).where(
            relation.c.person_id == cadre, relation.c.relative_id == relative,
            relation.c.relation == row.relation)).scalar()
        if not exists:
            conn.execute(relation.insert().values(person_id=cadre, relative_id=relative, relation=row.relation,
                                                  degree=row.degree, note=row.note or "",
                                                  declared_by=row.declared_by, created_at=row.created_at))


def downgrade() -> None:
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint('fk_user_account_person_id_person', type_='foreignkey')
        batch.drop_index(batch.f('ix_user_account_person_id'))
        batch.drop_column('person_id')
    op.drop_table('app_secret')
    op.drop_index('ix_case_person_person', table_name='case_person')
    op.drop_index(op.f('ix_case_person_case_id'), table_name='case_person')
    op.drop_table('case_person')
    op.drop_index(op.f('ix_person_relation_relative_id'), table_name='person_relation')
    op.drop_index(op.f('ix_person_relation_person_id'), table_name='person_relation')
    op.drop_table('person_relation')
    op.drop_index(op.f('ix_person_phone_hash'), table_name='person')
    op.drop_index(op.f('ix_person_household_id'), table_name='person')
    op.drop_index(op.f('ix_person_org_id'), table_name='person')
    op.drop_index('ix_person_org_name', table_name='person')
    op.drop_table('person')
    op.drop_index(op.f('ix_household_org_id'), table_name='household')
    op.drop_table('household')
