"""Pure logic of trial intelligence: FHIR minimisation (fhir), criteria as columnar checks
(criteria), matching a batch against studies (matching), screen-failure risk (risk) and
enrollment forecasts (forecast). No database, broker or HTTP here."""
