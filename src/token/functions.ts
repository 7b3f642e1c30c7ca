/**
 * The PKCS#11 functions of the JAHIS secure-token guide and the method of the
 * token interface behind each (docs/tokens.md has the table with its tests).
 * `TokenModule.functionList()` answers from here, and the conformance test
 * checks that every method named exists on both token kinds.
 */
export const PKCS11_FUNCTION_METHODS = {
  C_GetFunctionList: 'module.functionList',
  C_Initialize: 'openSoftwareToken / openPkcs11Module',
  C_Finalize: 'module.close',
  C_GetInfo: 'module.info',
  C_GetSlotList: 'module.slots',
  C_GetSlotInfo: 'module.slots',
  C_GetTokenInfo: 'module.tokenInfo',
  C_WaitForSlotEvent: 'module.waitForSlotEvent',
  C_GetMechanismList: 'module.mechanismList',
  C_GetMechanismInfo: 'module.mechanismInfo',
  C_InitToken: 'module.initToken',
  C_InitPIN: 'session.initPin',
  C_SetPIN: 'session.setPin',
  C_OpenSession: 'module.openSession',
  C_CloseSession: 'session.close',
  C_GetSessionInfo: 'session.sessionInfo',
  C_Login: 'session.login',
  C_Logout: 'session.logout',
  C_CreateObject: 'session.createObject',
  C_DestroyObject: 'session.destroyObject',
  C_GetObjectSize: 'session.objectSize',
  C_GetAttributeValue: 'session.getAttributes',
  C_SetAttributeValue: 'session.setAttributes',
  C_FindObjectsInit: 'session.findObjects',
  C_FindObjects: 'session.findObjects',
  C_FindObjectsFinal: 'session.findObjects',
  C_EncryptInit: 'session.encrypt / session.encryptInit',
  C_Encrypt: 'session.encrypt',
  C_EncryptUpdate: 'session.encryptInit → update',
  C_EncryptFinal: 'session.encryptInit → final',
  C_DecryptInit: 'session.decrypt',
  C_Decrypt: 'session.decrypt',
  C_DigestInit: 'session.digest / session.digestInit',
  C_Digest: 'session.digest',
  C_DigestUpdate: 'session.digestInit → update',
  C_DigestFinal: 'session.digestInit → final',
  C_SignInit: 'session.sign',
  C_Sign: 'session.sign',
  C_VerifyInit: 'session.verify / session.verifyInit',
  C_Verify: 'session.verify',
  C_VerifyUpdate: 'session.verifyInit → update',
  C_VerifyFinal: 'session.verifyInit → final',
  C_GenerateKeyPair: 'session.generateKeyPair',
  C_GenerateRandom: 'session.generateRandom',
} as const;

export type Pkcs11FunctionName = keyof typeof PKCS11_FUNCTION_METHODS;

/** The functions the JAHIS guide marks mandatory (its table of token middleware functions). */
export const JAHIS_MANDATORY_FUNCTIONS: readonly Pkcs11FunctionName[] = [
  'C_GetFunctionList', 'C_Initialize', 'C_Finalize', 'C_GetInfo', 'C_GetSlotList', 'C_GetSlotInfo', 'C_GetTokenInfo', 'C_WaitForSlotEvent',
  'C_GetMechanismList', 'C_GetMechanismInfo', 'C_OpenSession', 'C_CloseSession', 'C_GetSessionInfo', 'C_Login', 'C_Logout',
  'C_CreateObject', 'C_GetObjectSize', 'C_GetAttributeValue', 'C_SetAttributeValue', 'C_FindObjectsInit', 'C_FindObjects', 'C_FindObjectsFinal',
  'C_EncryptInit', 'C_Encrypt', 'C_EncryptUpdate', 'C_EncryptFinal', 'C_DecryptInit', 'C_Decrypt', 'C_VerifyInit', 'C_Verify', 'C_VerifyUpdate', 'C_VerifyFinal',
];

/** Every function name, in the table's order. */
export const PKCS11_FUNCTIONS = Object.keys(PKCS11_FUNCTION_METHODS) as Pkcs11FunctionName[];
