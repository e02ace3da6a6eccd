// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

library Math {
    function double(uint256 x) internal pure returns (uint256) {
        return x * 2;
    }
}
