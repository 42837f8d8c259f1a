//! Sans-IO tests of the login state machine: Login Responses in, Login
//! Requests out.
