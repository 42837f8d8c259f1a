//! Sans-IO tests of the connection: PDUs and time in, PDUs and events out.
