//! Exit codes (sysexits.h); [`crate::Failure::exit`] maps every failure to one.

/// The process exit status, following sysexits.h as listed in DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the message was accepted.
    Sent,
    /// 64 EX_USAGE: the command line is wrong.
    Usage,
    /// 65 EX_DATAERR: bad message or address.
    DataErr,
    /// 66 EX_NOINPUT: an input file (attachment, body, password) is missing.
    NoInput,
    /// 68 EX_NOHOST: the server's host name does not resolve.
    NoHost,
    /// 69 EX_UNAVAILABLE: permanent rejection (5xx).
    Unavailable,
    /// 73 EX_CANTCREAT: an output file (`--result-file`) cannot be created.
    CantCreate,
    /// 70 EX_SOFTWARE: a bug in this program or a library it uses.
    Software,
    /// 75 EX_TEMPFAIL: temporary failure (4xx, timeout, refused connection).
    TempFail,
    /// 76 EX_PROTOCOL: the server broke the protocol.
    Protocol,
    /// 77 EX_NOPERM: authentication failed.
    NoPerm,
    /// 78 EX_CONFIG: TLS required but unavailable, or the certificate is not valid.
    Config,
}

impl Exit {
    /// The numeric status for `std::process::exit`.
    pub fn code(self) -> i32 {
        match self {
            Exit::Sent => 0,
            Exit::Usage => 64,
            Exit::DataErr => 65,
            Exit::NoInput => 66,
            Exit::NoHost => 68,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::CantCreate => 73,
            Exit::TempFail => 75,
            Exit::Protocol => 76,
            Exit::NoPerm => 77,
            Exit::Config => 78,
        }
    }
}
