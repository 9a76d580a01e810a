"""foundation: operators, districts, feed data (stations, equipment, connectors, live status), sync runs, audit log

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 18:03:28.636542
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import geoalchemy2
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = ('foundation',)
depends_on = None


def upgrade() -> None:
    # PostGIS for geometry, pg_trgm for Chinese substring search (needs a UTF-8 LC_CTYPE).
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=80), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_table('connector_status',
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('connector_id', sa.String(length=26), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('park_status', sa.SmallInteger(), nullable=True),
    sa.Column('lock_status', sa.SmallInteger(), nullable=True),
    sa.Column('source', sa.String(length=10), server_default='pull', nullable=False),
    sa.Column('status_since', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('operator_id', 'connector_id', name=op.f('pk_connector_status'))
    )
    op.create_table('data_versions',
    sa.Column('layer', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger(), server_default='1', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('layer', name=op.f('pk_data_versions'))
    )
    op.create_geospatial_table('districts',
    sa.Column('adcode', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('name_en', sa.String(length=80), nullable=True),
    sa.Column('city_adcode', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=20), server_default='district', nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('label_point', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('adcode', name=op.f('pk_districts'))
    )
    op.create_geospatial_index('idx_districts_geom', 'districts', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_districts_city_adcode'), 'districts', ['city_adcode'], unique=False)
    op.create_table('operators',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('short_name', sa.String(length=50), nullable=True),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('service_tel', sa.String(length=30), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_operators_credit_code')),
    sa.UniqueConstraint('operator_id', name=op.f('uq_operators_operator_id'))
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('mode', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('pages', sa.Integer(), server_default='0', nullable=False),
    sa.Column('inserted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('unchanged', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rejected', sa.Integer(), server_default='0', nullable=False),
    sa.Column('withdrawn', sa.Integer(), server_default='0', nullable=False),
    sa.Column('statuses', sa.Integer(), server_default='0', nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("mode IN ('full', 'incremental', 'status', 'push', 'check')", name=op.f('ck_sync_runs_mode')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    op.create_index('ix_sync_runs_operator_started', 'sync_runs', ['operator_id', 'started_at'], unique=False)
    op.create_table('feed_endpoints',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=True),
    sa.Column('api_version', sa.String(length=20), server_default='v20160701', nullable=False),
    sa.Column('platform_operator_id', sa.String(length=32), nullable=True),
    sa.Column('operator_secret', sa.String(length=64), nullable=True),
    sa.Column('data_secret', sa.String(length=64), nullable=True),
    sa.Column('data_iv', sa.String(length=64), nullable=True),
    sa.Column('sig_secret', sa.String(length=64), nullable=True),
    sa.Column('inbound_operator_secret', sa.String(length=64), nullable=False),
    sa.Column('inbound_data_secret', sa.String(length=64), nullable=False),
    sa.Column('inbound_data_iv', sa.String(length=64), nullable=False),
    sa.Column('inbound_sig_secret', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('interconnected', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('last_query_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_full_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_push_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('circuit_state', sa.String(length=10), server_default='closed', nullable=False),
    sa.Column('circuit_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('circuit_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("circuit_state IN ('closed', 'open', 'half_open')", name=op.f('ck_feed_endpoints_circuit_state')),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.operator_id'], name=op.f('fk_feed_endpoints_operator_id_operators'), onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_endpoints')),
    sa.UniqueConstraint('operator_id', name=op.f('uq_feed_endpoints_operator_id'))
    )
    op.create_geospatial_table('stations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('equipment_owner_id', sa.String(length=9), nullable=True),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('country_code', sa.String(length=2), server_default='CN', nullable=False),
    sa.Column('area_code', sa.String(length=20), nullable=True),
    sa.Column('address', sa.String(length=100), nullable=True),
    sa.Column('station_tel', sa.String(length=30), nullable=True),
    sa.Column('service_tel', sa.String(length=30), nullable=True),
    sa.Column('station_type', sa.SmallInteger(), nullable=False),
    sa.Column('station_status', sa.SmallInteger(), nullable=False),
    sa.Column('park_nums', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lng_gcj02', sa.Float(), nullable=False),
    sa.Column('lat_gcj02', sa.Float(), nullable=False),
    sa.Column('site_guide', sa.String(length=200), nullable=True),
    sa.Column('construction', sa.SmallInteger(), nullable=True),
    sa.Column('pictures', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('match_cars', sa.String(length=200), nullable=True),
    sa.Column('park_info', sa.String(length=200), nullable=True),
    sa.Column('busine_hours', sa.String(length=200), nullable=True),
    sa.Column('electricity_fee', sa.String(length=512), nullable=True),
    sa.Column('service_fee', sa.String(length=200), nullable=True),
    sa.Column('park_fee', sa.String(length=200), nullable=True),
    sa.Column('payment', sa.String(length=100), nullable=True),
    sa.Column('support_order', sa.SmallInteger(), nullable=True),
    sa.Column('remark', sa.String(length=200), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('geom_3857', Geometry(geometry_type='POINT', srid=3857, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('district_adcode', sa.Integer(), nullable=True),
    sa.Column('area_code_mismatch', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('feed_state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('interconnected', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('facility_types', postgresql.ARRAY(sa.String(length=10)), server_default='{}', nullable=False),
    sa.Column('payments', postgresql.ARRAY(sa.String(length=10)), server_default='{}', nullable=False),
    sa.Column('payment_unknown', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('pile_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('scale', sa.String(length=10), nullable=True),
    sa.Column('max_power_kw', sa.Numeric(precision=8, scale=1), nullable=True),
    sa.Column('connectors_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('connectors_free', sa.Integer(), server_default='0', nullable=False),
    sa.Column('availability', sa.String(length=10), server_default='unknown', nullable=False),
    sa.Column('name_pinyin', sa.Text(), nullable=True),
    sa.Column('name_initials', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('info_changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("availability IN ('free', 'busy', 'offline', 'unknown')", name=op.f('ck_stations_availability')),
    sa.CheckConstraint("feed_state IN ('active', 'withdrawn', 'rejected')", name=op.f('ck_stations_feed_state')),
    sa.ForeignKeyConstraint(['district_adcode'], ['districts.adcode'], name=op.f('fk_stations_district_adcode_districts')),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.operator_id'], name=op.f('fk_stations_operator_id_operators'), onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
    sa.UniqueConstraint('operator_id', 'station_id', name=op.f('uq_stations_operator_id_station_id'))
    )
    op.create_geospatial_index('idx_stations_geom', 'stations', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_stations_geom_3857', 'stations', ['geom_3857'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_stations_district_adcode'), 'stations', ['district_adcode'], unique=False)
    op.create_index('ix_stations_facility_types', 'stations', ['facility_types'], unique=False, postgresql_using='gin')
    op.create_index('ix_stations_name_pinyin_trgm', 'stations', ['name_pinyin'], unique=False, postgresql_using='gin', postgresql_ops={'name_pinyin': 'gin_trgm_ops'})
    op.create_index('ix_stations_name_trgm', 'stations', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.create_index('ix_stations_operator_state', 'stations', ['operator_id', 'feed_state'], unique=False)
    op.create_index('ix_stations_payments', 'stations', ['payments'], unique=False, postgresql_using='gin')
    op.create_index('ix_stations_search_text_trgm', 'stations', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.create_index('ix_stations_updated_at', 'stations', ['updated_at'], unique=False)
    op.create_geospatial_table('equipment',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('station_pk', sa.BigInteger(), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('equipment_id', sa.String(length=23), nullable=False),
    sa.Column('manufacturer_id', sa.String(length=9), nullable=True),
    sa.Column('manufacturer_name', sa.String(length=60), nullable=True),
    sa.Column('equipment_model', sa.String(length=40), nullable=True),
    sa.Column('production_date', sa.Date(), nullable=True),
    sa.Column('equipment_type', sa.SmallInteger(), nullable=False),
    sa.Column('lng_gcj02', sa.Float(), nullable=True),
    sa.Column('lat_gcj02', sa.Float(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('power_kw', sa.Numeric(precision=8, scale=1), nullable=False),
    sa.Column('equipment_name', sa.String(length=60), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['station_pk'], ['stations.id'], name=op.f('fk_equipment_station_pk_stations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equipment')),
    sa.UniqueConstraint('operator_id', 'equipment_id', name=op.f('uq_equipment_operator_id_equipment_id'))
    )
    op.create_index(op.f('ix_equipment_station_pk'), 'equipment', ['station_pk'], unique=False)
    op.create_table('connectors',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('equipment_pk', sa.BigInteger(), nullable=False),
    sa.Column('station_pk', sa.BigInteger(), nullable=False),
    sa.Column('operator_id', sa.String(length=9), nullable=False),
    sa.Column('connector_id', sa.String(length=26), nullable=False),
    sa.Column('connector_name', sa.String(length=60), nullable=True),
    sa.Column('connector_type', sa.SmallInteger(), nullable=False),
    sa.Column('voltage_upper_limits', sa.Integer(), nullable=True),
    sa.Column('voltage_lower_limits', sa.Integer(), nullable=True),
    sa.Column('current', sa.Integer(), nullable=True),
    sa.Column('power_kw', sa.Numeric(precision=8, scale=1), nullable=False),
    sa.Column('park_no', sa.String(length=20), nullable=True),
    sa.Column('national_standard', sa.SmallInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['equipment_pk'], ['equipment.id'], name=op.f('fk_connectors_equipment_pk_equipment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['station_pk'], ['stations.id'], name=op.f('fk_connectors_station_pk_stations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connectors')),
    sa.UniqueConstraint('operator_id', 'connector_id', name=op.f('uq_connectors_operator_id_connector_id'))
    )
    op.create_index(op.f('ix_connectors_equipment_pk'), 'connectors', ['equipment_pk'], unique=False)
    op.create_index(op.f('ix_connectors_station_pk'), 'connectors', ['station_pk'], unique=False)
    op.execute("INSERT INTO data_versions (layer) VALUES ('stations'), ('districts') ON CONFLICT DO NOTHING")


def downgrade() -> None:
    op.drop_index(op.f('ix_connectors_station_pk'), table_name='connectors')
    op.drop_index(op.f('ix_connectors_equipment_pk'), table_name='connectors')
    op.drop_table('connectors')
    op.drop_index(op.f('ix_equipment_station_pk'), table_name='equipment')
    op.drop_geospatial_table('equipment')
    op.drop_index('ix_stations_updated_at', table_name='stations')
    op.drop_index('ix_stations_search_text_trgm', table_name='stations', postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.drop_index('ix_stations_payments', table_name='stations', postgresql_using='gin')
    op.drop_index('ix_stations_operator_state', table_name='stations')
    op.drop_index('ix_stations_name_trgm', table_name='stations', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.drop_index('ix_stations_name_pinyin_trgm', table_name='stations', postgresql_using='gin', postgresql_ops={'name_pinyin': 'gin_trgm_ops'})
    op.drop_index('ix_stations_facility_types', table_name='stations', postgresql_using='gin')
    op.drop_index(op.f('ix_stations_district_adcode'), table_name='stations')
    op.drop_geospatial_index('idx_stations_geom_3857', table_name='stations', postgresql_using='gist', column_name='geom_3857')
    op.drop_geospatial_index('idx_stations_geom', table_name='stations', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('stations')
    op.drop_table('feed_endpoints')
    op.drop_index('ix_sync_runs_operator_started', table_name='sync_runs')
    op.drop_table('sync_runs')
    op.drop_table('operators')
    op.drop_index(op.f('ix_districts_city_adcode'), table_name='districts')
    op.drop_geospatial_index('idx_districts_geom', table_name='districts', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('districts')
    op.drop_table('data_versions')
    op.drop_table('connector_status')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
