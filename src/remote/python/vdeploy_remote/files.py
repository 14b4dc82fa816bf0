"""Config files on a host (issue 17): facts and apply. (Work in progress.)"""
from vdeploy_remote import protocol


def main():
    protocol.answer({'error': 'not implemented yet'})
    return 3
