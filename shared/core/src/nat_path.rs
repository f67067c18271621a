//! The NAT-instance path's reading of a probe. A canary is probed over the NAT instance's own path
//! (a /32 route via its ENI) to learn whether that path forwards, not whether the canary is a good
//! web server: a far end that answered at all (a TLS alert or certificate error, any HTTP status)
//! proves that packets crossed the NAT and came back. Only network-level causes make a canary probe
//! fail for the path. A canary with a bad certificate can therefore never make the recovery replace
//! a healthy NAT instance; it is reported as misconfigured instead.

use crate::cause::Cause;

/// What one canary probe says about the NAT-instance path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProbe {
    /// The probe succeeded.
    Reached,
    /// The far end answered, but not as a good canary should (the cause says how): the path works,
    /// the canary is misconfigured.
    ReachedMisconfigured(Cause),
    /// No answer from the far end: the path failed this probe.
    Failed(Cause),
}

impl PathProbe {
    /// Reads a probe's outcome (`None`: it succeeded) with the path semantics.
    pub const fn judge(cause: Option<Cause>) -> PathProbe {
        match cause {
            None => PathProbe::Reached,
            Some(c) if far_end_answered(c) => PathProbe::ReachedMisconfigured(c),
            Some(c) => PathProbe::Failed(c),
        }
    }

    /// The cause that counts against the path, `None` when the path was proven.
    pub const fn path_cause(self) -> Option<Cause> {
        match self {
            PathProbe::Failed(c) => Some(c),
            PathProbe::Reached | PathProbe::ReachedMisconfigured(_) => None,
        }
    }
}

/// Whether a failure with this cause still means the far end answered: the TLS handshake got as far
/// as the server's alert or certificate, or an HTTP response head arrived. (A stalled handshake is
/// `timeout`, a reset is `connect_refused` or `other`: network-level.)
pub const fn far_end_answered(cause: Cause) -> bool {
    match cause {
        Cause::Tls | Cause::HttpStatus => true,
        Cause::Dns | Cause::ConnectRefused | Cause::ConnectTimeout | Cause::Timeout | Cause::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, checked for every cause: exactly TLS and HTTP-status failures prove the path.
    #[test]
    fn only_network_level_causes_fail_the_path() {
        assert_eq!(PathProbe::judge(None), PathProbe::Reached);
        for c in Cause::ALL {
            let judged = PathProbe::judge(Some(c));
            let network_level = matches!(c, Cause::Dns | Cause::ConnectRefused | Cause::ConnectTimeout | Cause::Timeout | Cause::Other);
            if network_level {
                assert_eq!(judged, PathProbe::Failed(c), "{c}");
                assert_eq!(judged.path_cause(), Some(c), "{c}");
            } else {
                assert_eq!(judged, PathProbe::ReachedMisconfigured(c), "{c}");
                assert_eq!(judged.path_cause(), None, "{c}: the far end answered");
            }
        }
    }
}
