// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Math} from "./lib/Math.sol";

contract Doubler {
    uint256 public last;
    event Doubled(uint256 input, uint256 output);

    function run(uint256 x) external returns (uint256 y) {
        y = Math.double(x);
        last = y;
        emit Doubled(x, y);
    }
}
