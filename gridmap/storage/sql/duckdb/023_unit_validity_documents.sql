-- v23 (issue 19): admin units carry a validity period, residents a document type.
-- admin_units.valid_from / valid_to: `gridmap units close CODE` sets valid_to and
--   keeps the row (history); units stored before this migration are in force
--   (both NULL). Readers that divide or locate take the units with valid_to NULL.
-- residents.id_type: the document the ID number is (gridmap.documents): the resident
--   ID card (NULL or 'resident_id', as every row stored before this migration), or,
--   for overseas residents (境外人员), a passport, a Hong Kong/Macao or Taiwan
--   residents' travel permit, or a foreigner's permanent residence ID card.
ALTER TABLE admin_units ADD COLUMN "valid_from" TIMESTAMPTZ;
ALTER TABLE admin_units ADD COLUMN "valid_to" TIMESTAMPTZ;
ALTER TABLE residents ADD COLUMN "id_type" VARCHAR;
