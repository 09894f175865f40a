//! `cargo run -p step-01`: prints three values as protobuf bytes and as JSON.

use step::{
    Comparison, RoundTripError, friend_lists_response, login_request, round_trip, to_hex,
    user_directory,
};

fn main() -> Result<(), RoundTripError> {
    report("LoginRequest (a message)", &round_trip(&login_request())?);
    report(
        "GetFriendListsResponse (a list)",
        &round_trip(&friend_lists_response())?,
    );
    report("UserDirectory (a map)", &round_trip(&user_directory())?);
    Ok(())
}

fn report(title: &str, comparison: &Comparison) {
    let protobuf = comparison.protobuf.len();
    let json = comparison.json.len();
    println!("== {title}");
    println!(
        "protobuf {protobuf:>3} bytes: {}",
        to_hex(&comparison.protobuf)
    );
    println!("json     {json:>3} bytes: {}", comparison.json);
    println!(
        "protobuf is {:.0}% of the JSON size; both parse back to the same value",
        100.0 * protobuf as f64 / json as f64
    );
}
