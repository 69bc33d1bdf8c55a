//! The TCP endpoint's place in the supervisor: bound at start where `--listen` or `[api] listen`
//! says, brought to the new `[api]` at each reload (a new address bound, a gone one closed, the
//! public paths and tokens replaced), or, when an address cannot be bound, left as it was with
//! the reload refused.

use super::system::System;
use super::{Supervisor, TCP};
use crate::config::Api;
use crate::control::Server;

impl<S: System> Supervisor<S> {
    /// Serves the API on TCP as `api` says (nothing when no address is given); the error names
    /// the address and where it is written, and pidone exits 2 with it.
    pub fn bind_api(&mut self, api: Api) -> Result<(), String> {
        if !self.services_mode && !self.options.listen.is_empty() {
            return Err("--listen: the API is served with a configuration only".to_string());
        }
        self.apply_api(api)
    }

    /// Brings the TCP endpoint to `api`, `--listen` taking the place of its addresses. Nothing
    /// changes when an address cannot be bound.
    pub(super) fn apply_api(&mut self, mut api: Api) -> Result<(), String> {
        if !self.options.listen.is_empty() {
            api.listen = self.options.listen.clone();
        }
        let Some(slot) = self.servers.get_mut(TCP) else {
            return Ok(());
        };
        match slot {
            _ if api.listen.is_empty() => *slot = None,
            Some(server) => {
                server.relisten(&api.listen)?;
                server.gate = Some(api);
            }
            None => *slot = Some(Server::listen(api)?),
        }
        Ok(())
    }
}
