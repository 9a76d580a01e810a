-- Charging per day (issue 15, item 9): sessions, energy and money of the orders that ended in a
-- window of China dates, per day and per district, operator and facility type (the connector's
-- pile's EquipmentType), and over the whole window per each of them (GROUPING SETS: one scan).
-- Each order counts once, in its latest version. Parameters: :a, :b (dates, both included).
SELECT GROUPING(o.day)              AS all_days,
       GROUPING(s.district_adcode)  AS all_districts,
       GROUPING(o.operator_id)      AS all_operators,
       GROUPING(e.equipment_type)   AS all_facilities,
       o.day,
       s.district_adcode,
       o.operator_id,
       e.equipment_type,
       count(*)                           AS sessions,
       coalesce(sum(o.total_power), 0)    AS energy_kwh,
       coalesce(sum(o.total_money), 0)    AS money_yuan
FROM charge_orders o
LEFT JOIN stations s ON s.id = o.station_pk
LEFT JOIN connectors c ON c.operator_id = o.operator_id AND c.connector_id = o.connector_id
LEFT JOIN equipment e ON e.id = c.equipment_pk
WHERE o.latest AND o.day BETWEEN :a AND :b
GROUP BY GROUPING SETS ((o.day), (o.day, s.district_adcode), (o.day, o.operator_id), (o.day, e.equipment_type),
                        (s.district_adcode), (o.operator_id), (e.equipment_type), ())
