//! The business logic every variant serves: the course's `Login`, reduced to
//! a comparison so that the benchmark measures the RPC path, not the handler.

use crate::pb::fixbug::{LoginRequest, LoginResponse, ResultCode};

/// User name the benchmark logs in with (the course's example user).
pub const NAME: &[u8] = b"zhang san";
/// Password that `login` accepts.
pub const PASSWORD: &[u8] = b"123456";

/// The request every call sends.
pub fn sample_request() -> LoginRequest {
    LoginRequest {
        name: NAME.to_vec(),
        pwd: PASSWORD.to_vec(),
    }
}

/// The check itself, for variants whose message types are their own.
pub fn accepts(name: &[u8], pwd: &[u8]) -> bool {
    name == NAME && pwd == PASSWORD
}

/// `UserServiceRpc.Login`: accepts the one known user. Allocation-light and
/// side-effect free on purpose; the course's version printed to stdout, which
/// would turn the benchmark into a terminal benchmark.
pub fn login(request: &LoginRequest) -> LoginResponse {
    let ok = accepts(&request.name, &request.pwd);
    LoginResponse {
        result: Some(ResultCode {
            errcode: if ok { 0 } else { 1 },
            errmsg: if ok {
                Vec::new()
            } else {
                b"bad name or password".to_vec()
            },
        }),
        success: ok,
    }
}

/// A `LoginResponse` in the benchmark's types from its three fields: how the
/// variants whose message types are their own (mprpc's, the step's, tarpc's)
/// hand their answers back to the load generator.
pub fn login_response(errcode: i32, errmsg: Vec<u8>, success: bool) -> LoginResponse {
    LoginResponse {
        result: Some(ResultCode { errcode, errmsg }),
        success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sample_and_rejects_others() {
        assert!(login(&sample_request()).success);
        let bad = LoginRequest {
            name: NAME.to_vec(),
            pwd: b"nope".to_vec(),
        };
        let response = login(&bad);
        assert!(!response.success);
        assert_eq!(response.result.map(|r| r.errcode), Some(1));
    }
}
