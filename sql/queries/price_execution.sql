-- Price execution over the orders that ended in a window of China dates (issue 15, item 6): one
-- row per (operator, station), one per operator and one for the whole city (GROUPING SETS, so
-- the distinct days of the upper rows are counted, not summed). Each order counts once, in its
-- latest version; station_pk is NULL for orders on a connector we do not know.
--   priced: orders whose prices could be checked against a tariff (at_tariff is not NULL)
--   unreconciled: no daily list has covered the order yet, or the operator's list lacked it
-- Parameters: :a, :b (dates, both included), :op (an OperatorID or NULL for all).
SELECT GROUPING(o.operator_id)                                              AS all_operators,
       GROUPING(o.station_pk)                                               AS all_stations,
       o.operator_id,
       o.station_pk,
       count(*)                                                             AS orders,
       count(DISTINCT o.station_pk)                                         AS stations,
       coalesce(sum(o.total_power), 0)                                      AS energy_kwh,
       coalesce(sum(o.total_money), 0)                                      AS money_yuan,
       count(*) FILTER (WHERE o.at_tariff IS NOT NULL)                      AS priced,
       count(*) FILTER (WHERE o.at_tariff)                                  AS at_tariff,
       count(*) FILTER (WHERE o.overcharge_yuan > 0)                        AS overcharged,
       coalesce(sum(o.overcharge_yuan), 0)                                  AS overcharge_yuan,
       count(*) FILTER (WHERE o.confirm_result = 1)                         AS disputed,
       count(*) FILTER (WHERE o.version > 1)                                AS revised,
       count(*) FILTER (WHERE o.reconcile_state = 'disputed')               AS reconcile_disputed,
       count(*) FILTER (WHERE o.reconcile_state IS NULL
                          OR o.reconcile_state = 'unlisted')                AS unreconciled,
       count(*) FILTER (WHERE o.reconcile_state = 'unlisted')               AS unlisted,
       count(DISTINCT o.day) FILTER (WHERE o.reconcile_state IS NULL
                                       OR o.reconcile_state = 'unlisted')   AS unreconciled_days,
       count(DISTINCT o.day)                                                AS order_days
FROM charge_orders o
WHERE o.latest
  AND o.day BETWEEN :a AND :b
  AND (CAST(:op AS varchar) IS NULL OR o.operator_id = CAST(:op AS varchar))
GROUP BY GROUPING SETS ((o.operator_id, o.station_pk), (o.operator_id), ())
