SELECT current_setting('server_version') AS postgresql,
       postgis_lib_version() AS postgis,
       (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version) AS revision,
       current_setting('lc_ctype') AS lc_ctype
