"""Initial schema, and the ISO 3166-1 countries from pycountry as reference data.

Revision ID: 62e51d65f564
Revises: 
Create Date: 2026-11-27 04:58:18.020484
"""

from collections.abc import Sequence

import pycountry
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '62e51d65f564'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('country',
    sa.Column('iso2', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('iso3', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('numeric', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('official_name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.PrimaryKeyConstraint('iso2', name=op.f('pk_country')),
    sa.UniqueConstraint('iso3', name=op.f('uq_country_iso3')),
    sa.UniqueConstraint('numeric', name=op.f('uq_country_numeric'))
    )
    with op.batch_alter_table('country', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_country_name'), ['name'], unique=False)

    country = sa.table(
        "country",
        sa.column("iso2"),
        sa.column("iso3"),
        sa.column("numeric"),
        sa.column("name"),
        sa.column("official_name"),
    )
    op.bulk_insert(
        country,
        [
            {
                "iso2": c.alpha_2,
                "iso3": c.alpha_3,
                "numeric": c.numeric,
                "name": c.name,
                "official_name": getattr(c, "official_name", None),
            }
            for c in pycountry.countries
        ],
    )

    op.create_table('dataset_change',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_dataset_change'))
    )
    with op.batch_alter_table('dataset_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_change_revision'), ['revision'], unique=False)

    op.create_table('dataset_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('seed_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_dataset_state_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_state'))
    )
    op.create_table('organization',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('acronym', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization'))
    )
    op.create_table('person',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_name'), ['name'], unique=False)

    op.create_table('source',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('publisher', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('published_at', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('published_utc', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source'))
    )
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_published_utc'), ['published_utc'], unique=False)

    op.create_table('transport_route',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('acronym', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transport_route'))
    )
    op.create_table('treaty',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('signed', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('signed_start', sa.Date(), nullable=True),
    sa.Column('signed_end', sa.Date(), nullable=True),
    sa.Column('signed_place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treaty'))
    )
    with op.batch_alter_table('treaty', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treaty_signed_start'), ['signed_start'], unique=False)

    op.create_table('citation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fact_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('fact_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.String(length=120), nullable=False),
    sa.Column('quote', sa.Text(), nullable=False),
    sa.CheckConstraint("fact_type IN ('relation', 'relation_note', 'treaty', 'visit', 'trade', 'route', 'figure', 'membership', 'role')", name=op.f('ck_citation_fact_type')),
    sa.CheckConstraint('length(quote) > 0', name=op.f('ck_citation_quote_not_empty')),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_citation_source_id_source'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_citation')),
    sa.UniqueConstraint('fact_type', 'fact_id', 'position', name=op.f('uq_citation_fact_type_fact_id_position'))
    )
    with op.batch_alter_table('citation', schema=None) as batch_op:
        batch_op.create_index('ix_citation_fact', ['fact_type', 'fact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_citation_source_id'), ['source_id'], unique=False)

    op.create_table('diplomatic_relation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('country_a', sa.String(length=2), nullable=False),
    sa.Column('country_b', sa.String(length=2), nullable=False),
    sa.Column('established', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('established_start', sa.Date(), nullable=True),
    sa.Column('established_end', sa.Date(), nullable=True),
    sa.CheckConstraint('country_a < country_b', name=op.f('ck_diplomatic_relation_canonical_pair')),
    sa.ForeignKeyConstraint(['country_a'], ['country.iso2'], name=op.f('fk_diplomatic_relation_country_a_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['country_b'], ['country.iso2'], name=op.f('fk_diplomatic_relation_country_b_country'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diplomatic_relation')),
    sa.UniqueConstraint('country_a', 'country_b', name=op.f('uq_diplomatic_relation_country_a_country_b'))
    )
    with op.batch_alter_table('diplomatic_relation', schema=None) as batch_op:
        batch_op.create_index('ix_diplomatic_relation_country_b', ['country_b'], unique=False)

    op.create_table('figure',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('approximate', sa.Boolean(), nullable=False),
    sa.Column('as_of', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('as_of_start', sa.Date(), nullable=True),
    sa.Column('as_of_end', sa.Date(), nullable=True),
    sa.Column('country_a', sa.String(length=2), nullable=True),
    sa.Column('country_b', sa.String(length=2), nullable=True),
    sa.Column('route_id', sa.String(length=120), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.CheckConstraint('(route_id IS NULL AND country_a IS NOT NULL AND country_b IS NOT NULL AND country_a < country_b) OR (route_id IS NOT NULL AND country_a IS NULL AND country_b IS NULL)', name=op.f('ck_figure_one_subject')),
    sa.ForeignKeyConstraint(['country_a'], ['country.iso2'], name=op.f('fk_figure_country_a_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['country_b'], ['country.iso2'], name=op.f('fk_figure_country_b_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['route_id'], ['transport_route.id'], name=op.f('fk_figure_route_id_transport_route'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_figure'))
    )
    with op.batch_alter_table('figure', schema=None) as batch_op:
        batch_op.create_index('ix_figure_pair', ['country_a', 'country_b'], unique=False)
        batch_op.create_index(batch_op.f('ix_figure_route_id'), ['route_id'], unique=False)

    op.create_table('membership',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('organization_id', sa.String(length=120), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('since', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('since_start', sa.Date(), nullable=True),
    sa.Column('since_end', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['country'], ['country.iso2'], name=op.f('fk_membership_country_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_membership_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('organization_id', 'country', name=op.f('uq_membership_organization_id_country'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_country'), ['country'], unique=False)

    op.create_table('role',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('person_id', sa.String(length=120), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('organization_id', sa.String(length=120), nullable=True),
    sa.Column('start', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('start_start', sa.Date(), nullable=True),
    sa.Column('start_end', sa.Date(), nullable=True),
    sa.Column('end', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('end_start', sa.Date(), nullable=True),
    sa.Column('end_end', sa.Date(), nullable=True),
    sa.Column('as_of', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('as_of_start', sa.Date(), nullable=True),
    sa.Column('as_of_end', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['country'], ['country.iso2'], name=op.f('fk_role_country_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_role_organization_id_organization'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_role_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role'))
    )
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_country'), ['country'], unique=False)

    op.create_table('route_country',
    sa.Column('route_id', sa.String(length=120), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['country'], ['country.iso2'], name=op.f('fk_route_country_country_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['route_id'], ['transport_route.id'], name=op.f('fk_route_country_route_id_transport_route'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('route_id', 'country', name=op.f('pk_route_country'))
    )
    with op.batch_alter_table('route_country', schema=None) as batch_op:
        batch_op.create_index('ix_route_country_country', ['country', 'route_id'], unique=False)

    op.create_table('trade_figure',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('reporter', sa.String(length=2), nullable=False),
    sa.Column('partner', sa.String(length=2), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('flow', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('approximate', sa.Boolean(), nullable=False),
    sa.CheckConstraint("flow IN ('turnover', 'export', 'import')", name=op.f('ck_trade_figure_flow')),
    sa.CheckConstraint('reporter <> partner', name=op.f('ck_trade_figure_distinct_countries')),
    sa.CheckConstraint('value >= 0', name=op.f('ck_trade_figure_value_not_negative')),
    sa.ForeignKeyConstraint(['partner'], ['country.iso2'], name=op.f('fk_trade_figure_partner_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reporter'], ['country.iso2'], name=op.f('fk_trade_figure_reporter_country'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trade_figure'))
    )
    with op.batch_alter_table('trade_figure', schema=None) as batch_op:
        batch_op.create_index('ix_trade_figure_pair', ['reporter', 'partner', 'year'], unique=False)
        batch_op.create_index('ix_trade_figure_partner', ['partner', 'reporter', 'year'], unique=False)
        batch_op.create_index('ix_trade_figure_year', ['year'], unique=False)

    op.create_table('treaty_party',
    sa.Column('treaty_id', sa.String(length=120), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['country'], ['country.iso2'], name=op.f('fk_treaty_party_country_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['treaty_id'], ['treaty.id'], name=op.f('fk_treaty_party_treaty_id_treaty'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('treaty_id', 'country', name=op.f('pk_treaty_party'))
    )
    with op.batch_alter_table('treaty_party', schema=None) as batch_op:
        batch_op.create_index('ix_treaty_party_country', ['country', 'treaty_id'], unique=False)

    op.create_table('visit',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('date', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('date_start', sa.Date(), nullable=False),
    sa.Column('date_end', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('guest', sa.String(length=2), nullable=False),
    sa.Column('host', sa.String(length=2), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.CheckConstraint('guest <> host', name=op.f('ck_visit_distinct_countries')),
    sa.ForeignKeyConstraint(['guest'], ['country.iso2'], name=op.f('fk_visit_guest_country'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['host'], ['country.iso2'], name=op.f('fk_visit_host_country'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit'))
    )
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_date_start'), ['date_start'], unique=False)
        batch_op.create_index('ix_visit_guest_host', ['guest', 'host'], unique=False)
        batch_op.create_index('ix_visit_host_guest', ['host', 'guest'], unique=False)

    op.create_table('relation_note',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('relation_id', sa.String(length=120), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['relation_id'], ['diplomatic_relation.id'], name=op.f('fk_relation_note_relation_id_diplomatic_relation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relation_note'))
    )
    op.create_table('visit_participant',
    sa.Column('visit_id', sa.String(length=120), nullable=False),
    sa.Column('person_id', sa.String(length=120), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_visit_participant_person_id_person'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_visit_participant_visit_id_visit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('visit_id', 'person_id', name=op.f('pk_visit_participant'))
    )
    with op.batch_alter_table('visit_participant', schema=None) as batch_op:
        batch_op.create_index('ix_visit_participant_person_id', ['person_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('visit_participant', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_participant_person_id')

    op.drop_table('visit_participant')
    op.drop_table('relation_note')
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_host_guest')
        batch_op.drop_index('ix_visit_guest_host')
        batch_op.drop_index(batch_op.f('ix_visit_date_start'))

    op.drop_table('visit')
    with op.batch_alter_table('treaty_party', schema=None) as batch_op:
        batch_op.drop_index('ix_treaty_party_country')

    op.drop_table('treaty_party')
    with op.batch_alter_table('trade_figure', schema=None) as batch_op:
        batch_op.drop_index('ix_trade_figure_year')
        batch_op.drop_index('ix_trade_figure_partner')
        batch_op.drop_index('ix_trade_figure_pair')

    op.drop_table('trade_figure')
    with op.batch_alter_table('route_country', schema=None) as batch_op:
        batch_op.drop_index('ix_route_country_country')

    op.drop_table('route_country')
    with op.batch_alter_table('role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_country'))

    op.drop_table('role')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_country'))

    op.drop_table('membership')
    with op.batch_alter_table('figure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_figure_route_id'))
        batch_op.drop_index('ix_figure_pair')

    op.drop_table('figure')
    with op.batch_alter_table('diplomatic_relation', schema=None) as batch_op:
        batch_op.drop_index('ix_diplomatic_relation_country_b')

    op.drop_table('diplomatic_relation')
    with op.batch_alter_table('citation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citation_source_id'))
        batch_op.drop_index('ix_citation_fact')

    op.drop_table('citation')
    with op.batch_alter_table('treaty', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treaty_signed_start'))

    op.drop_table('treaty')
    op.drop_table('transport_route')
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_published_utc'))

    op.drop_table('source')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_name'))

    op.drop_table('person')
    op.drop_table('organization')
    op.drop_table('dataset_state')
    with op.batch_alter_table('dataset_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_change_revision'))

    op.drop_table('dataset_change')
    with op.batch_alter_table('country', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_country_name'))

    op.drop_table('country')
