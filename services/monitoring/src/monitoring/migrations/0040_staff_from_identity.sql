-- Staff are identified by access tokens from the identity issuer (issue 15, decision 0071):
-- monitoring keeps no staff accounts or token hashes any more. Who acknowledged or resolved
-- an alert stays recorded by id on the alert and in the audit trail.
DROP TABLE staff;
